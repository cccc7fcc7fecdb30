"""Privacy controls under PIPL: consent, data-subject requests, de-identification."""
