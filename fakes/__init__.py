"""Test doubles that tests and benchmarks share: fake OpenFlow switches around a real Balancer, and frame builders."""
