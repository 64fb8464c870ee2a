"""Decisions a review can defend: a threshold with a recall guarantee (calibrate), active-
learning ranking (prioritize) and a statistical stopping rule (stopping). Stateless: the
caller owns the labels, as it owns the papers. Method notes: ../shared/DECISIONS.md."""
