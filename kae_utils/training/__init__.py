"""Training: the numerics (:mod:`.numerics`: bf16 autocast, channels-last, float32 losses), the trainer and its
callbacks (:mod:`.trainer`), batched eval-mode inference (:mod:`.predict`), load-or-train (:mod:`.cache`).
"""
