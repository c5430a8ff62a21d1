"""The body fit's named choices, without its machinery: the options that offer them are
parsed without importing torch."""

OBJECTIVES = ("sum", "mean")  # Eq. 4.6's sums over vertices, points and joints; or each a mean
MATCHINGS = ("every_step", "once")  # nearest neighbours found at every step, or once (BodyNet's code)
