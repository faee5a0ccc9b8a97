"""Display: plots (:mod:`.viz`), widgets (:mod:`.widgets`), progress bars (:mod:`.progress`) and the library's
code shown in a notebook (:mod:`.source`: ``show_source``).
"""
