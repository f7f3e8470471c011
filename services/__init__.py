"""Use cases: what a person or a job does, as functions taking a SQLAlchemy Session.

Pages, the command line and workers call these; they call core/ (pure logic, the ledger)
and db/ (storage). A function that must commit part of its work (a long run, batch by
batch) commits the session it was given; nothing here opens a database by URL except at a
process or Ray-actor boundary.
"""
