"""The scenario scripts (``l4sim run NAME``): getpid, read, fork, boot and mitigations.

Each script records its run (``scenarios.record``), prices it with a profile
(``scenarios.cost``) and prints its figures as text or JSON.
"""
