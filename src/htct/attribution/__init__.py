"""Attribution of CTNet's HT logit to the image: the methods, their sanity and faithfulness tests.

- :mod:`~htct.attribution.gradcam`: the paper's Grad-CAM (captum), used by ``htct predict``;
- :mod:`~htct.attribution.pooled_cam`: the exact decomposition of the logit through CTNet's pooled head;
- :mod:`~htct.attribution.perturbation`: occlusion and Integrated Gradients towards healthy tissue;
- :mod:`~htct.attribution.methods`: the four side by side, one sign convention (positive = raises HT risk);
- :mod:`~htct.attribution.localisation`: brain share, lesion enrichment, pointing game, with chance levels;
- :mod:`~htct.attribution.sanity`: cascading model-parameter randomisation;
- :mod:`~htct.attribution.faithfulness`: deletion of the top region vs random regions, and the
  counterfactual test read from the counterfactual stage (does the model use the infarct; do the
  maps track how much);
- :mod:`~htct.attribution.stage`: the workflow stage (rules/attribution.smk);
- :mod:`~htct.attribution.counterfactual`: every model's logit change when the synthetic generator
  removes one image factor from a scan (rules/counterfactual.smk), beside the oracle's.

torch and captum are imported where used: the summary and figure steps run without them.
"""

from htct.attribution.gradcam import gradcam
from htct.attribution.localisation import attention_mass, localisation_scores
from htct.attribution.methods import attribution_maps, methods
from htct.attribution.pooled_cam import pooled_cam

__all__ = ["attention_mass", "attribution_maps", "gradcam", "localisation_scores", "methods", "pooled_cam"]
