"""The checks of the labs' exercises (dlab.exercises), a module per lab: each check takes the
student's function and returns None when it does what the exercise asks, else what is wrong and
how to mend it, in one sentence."""
