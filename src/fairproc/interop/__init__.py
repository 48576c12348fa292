"""fairproc's edge towards the ecosystem's vocabularies: W3C DPV and Fides (fideslang).

Nothing in the core imports the exporters: :mod:`fairproc.interop.dpv` and
:mod:`fairproc.interop.fides` read a loaded :class:`~fairproc.model.Policy` (and the policy's
``interop/`` mapping files, :mod:`fairproc.interop.mapping`) and write documents.
:mod:`fairproc.interop.terms` holds the packaged term lists that lint checks terms against.
"""
