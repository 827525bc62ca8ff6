"""From parameters to segments: image transforms, anchors, style and the Vis2Mus texture pipeline."""
