"""The harvest (seed 001 Figure 8, seed 003): receive, verify, decrypt, validate, rate and load
call records from customers' PBXs."""
