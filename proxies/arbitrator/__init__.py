"""The arbitrator (seed Figure 11(b)): routes every report request to its ODS partition."""
