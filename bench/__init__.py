"""The benchmark harness behind ``make bench``. Each capability adds a section module."""
