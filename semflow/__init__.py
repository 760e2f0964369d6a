"""SemFlow: semantic segmentation and semantic image synthesis with one rectified flow."""

from .anchors import AnchorSpec, anchor_colors, decode_anchors, encode_anchors
from .codec import PixelCodec, VAECodec
from .encoder_unet import EncoderUNet
from .flow import flow_loss, interpolate, sample_t, target_velocity
from .labels import BUILTIN_LABEL_SETS, LabelSet, get_label_set
from .loading import load_pipeline
from .outputs import SegmentationOutput, SynthesisOutput
from .perturbation import check_beta, perturb
from .pipeline import SemFlowPipeline
from .samplers import SOLVERS, Integration, integrate
from .velocity import PromptEmbedding, predict_velocity

__version__ = "0.1.0"

__all__ = [
    "AnchorSpec",
    "BUILTIN_LABEL_SETS",
    "EncoderUNet",
    "Integration",
    "LabelSet",
    "PixelCodec",
    "PromptEmbedding",
    "SOLVERS",
    "SegmentationOutput",
    "SemFlowPipeline",
    "SynthesisOutput",
    "VAECodec",
    "anchor_colors",
    "check_beta",
    "decode_anchors",
    "encode_anchors",
    "flow_loss",
    "get_label_set",
    "integrate",
    "interpolate",
    "load_pipeline",
    "perturb",
    "predict_velocity",
    "sample_t",
    "target_velocity",
]
