"""The ``owl`` command line: it parses and prints; the work is done elsewhere."""
