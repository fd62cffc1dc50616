"""Order entry -- the seed's StarOE: users, enterprises and their billing
hierarchy, logon checks, entitlements and the pick lists the Report Manager serves.

The data layer is :mod:`starwrs.proxies.oe.store` (records in
:mod:`~starwrs.proxies.oe.model`, hashing in :mod:`~starwrs.proxies.oe.passwords`,
reference pick lists in :mod:`~starwrs.proxies.oe.reference`).
"""
