"""The Report Scheduler (seed: RS server 260): when each saved report runs."""
