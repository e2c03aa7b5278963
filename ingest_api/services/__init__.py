"""Services the routes wrap: plain Python, testable without HTTP."""
