"""The kernel's CoW selftest (tools/testing/selftests/mm/cow.c) ported onto pkmm.

:mod:`pkmm.cowc.matrix` lists cow.c's cases as the kernel runs them,
:mod:`pkmm.cowc.model` runs each case on the model with cow.c's own assertion, and
:mod:`pkmm.cowc.report` compares the model, variant by variant, with the live kernel's
stored results (``python -m pkmm realkernel --cowc``).
Taught in: notebooks/09-real-kernel-lab.ipynb
"""
