"""Transferability estimators (:mod:`.estimators`) and the ranking harness of notebooks 08 and 09
(:mod:`.ranking`). The estimators are re-exported here: ``from kae_utils.methods import transferability as tr``.
"""

from kae_utils.methods.transferability.estimators import *  # noqa: F403
from kae_utils.methods.transferability.estimators import __all__  # noqa: F401
