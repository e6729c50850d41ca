"""Figures and pages: how ``gated tour`` and ``gated explain`` show what the models compute.

``style`` holds the one look every figure shares, ``figures`` draws numbers
that the caller computed (no figure trains or runs a model), and ``page``
writes the self-contained HTML around them, escaping every piece of text.
"""
