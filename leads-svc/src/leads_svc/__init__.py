"""leads-svc: leads and their cases, one lead per caller number and account."""
