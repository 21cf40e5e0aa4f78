"""Reports: ``l4sim reproduce`` (figures against the model, what-ifs, plots) and traces
people can read (text, Mermaid, Perfetto) or store (the trace file format).
"""
