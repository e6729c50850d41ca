"""Weights in and out of other libraries' recurrent layers: Keras 3 and haste.

``from_keras`` / ``to_keras`` (``keras.py``) and ``from_haste`` / ``to_haste``
(``haste.py``) move weights between those layouts and gated's modules, which
keep ``torch.nn``'s: rows ``W_ih`` (gates * H, input), gate rows LSTM i, f, g, o
and GRU r, z, n, a bias pair ``b_ih``, ``b_hh``. ``ResetBeforeGRU`` is the GRU of
Keras's ``reset_after=False``, which torch.nn does not have. Keras is imported only when a
Keras function is called, so ``import gated.convert`` stays light.
"""

from .haste import from_haste, to_haste
from .keras import from_keras, to_keras
from .reset_before import ResetBeforeGRU

__all__ = ["ResetBeforeGRU", "from_haste", "from_keras", "to_haste", "to_keras"]
