"""Research data sets built from de-identified data, with k-anonymity and the cross-border export gate."""
