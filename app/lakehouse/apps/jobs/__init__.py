"""Batch jobs on the lakehouse (issue 20): job files, their schedule, their runs."""
