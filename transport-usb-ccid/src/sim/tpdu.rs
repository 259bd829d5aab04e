//! TODO: T=0 / T=1 card sides for the simulated reader (helper B).
