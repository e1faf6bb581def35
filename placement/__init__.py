"""Controller placement from traffic (docs/placement.md)."""
