"""A mutation run the project owns: ``python -m tests.mutation.run`` (see run.py). Not part
of the default test run (no ``test_*`` files here)."""
