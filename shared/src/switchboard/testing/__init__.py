"""Test support shared by every member's tests: the real servers, and per-test isolation on them."""
