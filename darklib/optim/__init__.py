"""darklib.optim: optimizers (SGD, Adam, AdamW, RMSprop) and learning-rate schedulers.

>>> opt = dl.optim.Adam(model.parameters(), lr=1e-3)
>>> sched = dl.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
"""

from darklib.optim import lr_scheduler
from darklib.optim.adam import Adam, AdamW
from darklib.optim.optimizer import Optimizer
from darklib.optim.rmsprop import RMSprop
from darklib.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
