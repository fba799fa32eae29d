"""The studio's panels: start/gallery, dataset, model, training, outputs."""
