"""The Report Manager (seed 001: Report Manager server 250) and its proxy."""
