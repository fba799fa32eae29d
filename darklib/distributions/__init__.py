"""``dl.distributions``: probability distributions with torch.distributions' names and
semantics (``dl.distributions.Normal(loc, scale).log_prob(x)``), sampling through darklib's
seeded generators, every formula a darklib op so that gradients flow on CPU and GPU."""

from darklib.distributions import constraint_registry, constraints, transforms
from darklib.distributions.bernoulli import Bernoulli
from darklib.distributions.categorical import (
    Categorical,
    OneHotCategorical,
    OneHotCategoricalStraightThrough,
)
from darklib.distributions.cauchy import Cauchy, StudentT
from darklib.distributions.constraint_registry import biject_to, transform_to
from darklib.distributions.continuous_bernoulli import ContinuousBernoulli
from darklib.distributions.dirichlet import Beta, Dirichlet
from darklib.distributions.distribution import Distribution
from darklib.distributions.exp_family import ExponentialFamily
from darklib.distributions.exponential import Exponential
from darklib.distributions.extreme import Gumbel, Pareto, Weibull
from darklib.distributions.gamma import Chi2, FisherSnedecor, Gamma
from darklib.distributions.generalized_pareto import GeneralizedPareto
from darklib.distributions.independent import Independent
from darklib.distributions.kl import kl_divergence, register_kl
from darklib.distributions.laplace import Laplace
from darklib.distributions.lkj_cholesky import LKJCholesky
from darklib.distributions.lowrank_multivariate_normal import LowRankMultivariateNormal
from darklib.distributions.mixture_same_family import MixtureSameFamily
from darklib.distributions.multinomial import Multinomial
from darklib.distributions.multivariate_normal import MultivariateNormal
from darklib.distributions.normal import Normal
from darklib.distributions.poisson import Binomial, Geometric, NegativeBinomial, Poisson
from darklib.distributions.relaxed import (
    ExpRelaxedCategorical,
    LogitRelaxedBernoulli,
    RelaxedBernoulli,
    RelaxedOneHotCategorical,
)
from darklib.distributions.transformed_distribution import (
    HalfCauchy,
    HalfNormal,
    InverseGamma,
    Kumaraswamy,
    LogisticNormal,
    LogNormal,
    TransformedDistribution,
)
from darklib.distributions.transforms import (
    AbsTransform,
    AffineTransform,
    CatTransform,
    ComposeTransform,
    CorrCholeskyTransform,
    CumulativeDistributionTransform,
    ExpTransform,
    IndependentTransform,
    LowerCholeskyTransform,
    PositiveDefiniteTransform,
    PowerTransform,
    ReshapeTransform,
    SigmoidTransform,
    SoftmaxTransform,
    SoftplusTransform,
    StackTransform,
    StickBreakingTransform,
    TanhTransform,
    Transform,
    identity_transform,
)
from darklib.distributions.uniform import Uniform
from darklib.distributions.von_mises import VonMises
from darklib.distributions.wishart import Wishart

__all__ = [
    "AbsTransform",
    "AffineTransform",
    "Bernoulli",
    "Beta",
    "biject_to",
    "Binomial",
    "Categorical",
    "CatTransform",
    "Cauchy",
    "Chi2",
    "ComposeTransform",
    "constraint_registry",
    "constraints",
    "ContinuousBernoulli",
    "CorrCholeskyTransform",
    "CumulativeDistributionTransform",
    "Dirichlet",
    "Distribution",
    "Exponential",
    "ExponentialFamily",
    "ExpRelaxedCategorical",
    "ExpTransform",
    "FisherSnedecor",
    "Gamma",
    "GeneralizedPareto",
    "Geometric",
    "Gumbel",
    "HalfCauchy",
    "HalfNormal",
    "identity_transform",
    "Independent",
    "IndependentTransform",
    "InverseGamma",
    "kl_divergence",
    "Kumaraswamy",
    "LKJCholesky",
    "Laplace",
    "LogisticNormal",
    "LogitRelaxedBernoulli",
    "LogNormal",
    "LowerCholeskyTransform",
    "LowRankMultivariateNormal",
    "MixtureSameFamily",
    "Multinomial",
    "MultivariateNormal",
    "NegativeBinomial",
    "Normal",
    "OneHotCategorical",
    "OneHotCategoricalStraightThrough",
    "Pareto",
    "Poisson",
    "PositiveDefiniteTransform",
    "PowerTransform",
    "register_kl",
    "RelaxedBernoulli",
    "RelaxedOneHotCategorical",
    "ReshapeTransform",
    "SigmoidTransform",
    "SoftmaxTransform",
    "SoftplusTransform",
    "StackTransform",
    "StickBreakingTransform",
    "StudentT",
    "TanhTransform",
    "Transform",
    "transform_to",
    "TransformedDistribution",
    "transforms",
    "Uniform",
    "VonMises",
    "Weibull",
    "Wishart",
]
