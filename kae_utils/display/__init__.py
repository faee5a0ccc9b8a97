"""Display: plots (:mod:`.viz`), widgets (:mod:`.widgets`) and progress bars (:mod:`.progress`).
"""
