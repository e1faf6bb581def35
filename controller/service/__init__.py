"""What runs the core: the framework shim's helpers, REST, metrics, capture, rate limits."""
