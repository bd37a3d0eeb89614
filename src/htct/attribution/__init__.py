"""htct.attribution: what a trained model uses in the image (counterfactual logit changes)."""
