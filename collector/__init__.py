"""The customer-side intelligent ticket collector of seed 003: it reads the call
records a PBX writes (``starwrs.collector.readers``), and encrypts and sends them to
the service provider (DESIGN.md, Layout)."""
