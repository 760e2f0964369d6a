"""SemFlow: semantic segmentation and semantic image synthesis with one rectified flow."""

from .anchors import AnchorSpec, anchor_colors, decode_anchors, encode_anchors
from .codec import PixelCodec, VAECodec
from .encoder_unet import EncoderUNet
from .flow import flow_loss, sample_t
from .labels import BUILTIN_LABEL_SETS, LabelSet, get_label_set
from .loading import load_pipeline
from .outputs import SegmentationOutput, SynthesisOutput
from .perturbation import check_beta, perturb
from .pipeline import SemFlowPipeline
from .solvers import SOLVERS, Integration, integrate
from .velocity import PromptEmbedding, net_output

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
    "load_pipeline",
    "perturb",
    "net_output",
    "sample_t",
]
