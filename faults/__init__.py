"""`make faults`: a bounded fault-injection suite against a private local stack (see faults/__main__.py)."""
