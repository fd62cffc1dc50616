"""The customer-side intelligent ticket collector of seed 003: it reads the call
records a PBX writes (``starwrs.collector.readers``), groups them into batches
(``batch``: the format), signs and encrypts each (``smime``, ``cms``, ``identity``),
keeps a durable spool of what was read and sent (``spool``) and e-mails the batches to
the service provider's harvest (``mailer``, ``service``; ``config`` is its state
directory).  The harvest (``starwrs.proxies.harvest``) reads them with these modules."""
