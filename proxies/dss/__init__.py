"""The Decision Support Server (seed 001: StarODS DSS, Figures 11(b)-12(b), Appendix I).

Pure parts first: the column-id table (:mod:`.columns`), the derived-column expression
evaluator shared with the viewer (:mod:`.expr`), the report SQL generator (:mod:`.sql`)
and the formatter that writes the report file (:mod:`.formatter`).
"""
