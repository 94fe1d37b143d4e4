"""noisefloor: is a hyperparameter improvement real, or seed noise?"""

__version__ = "0.1.0"
