"""Real-time monocular 3D pose as Mehta et al.'s VNect and XNect make it: SelecSLS-based
location-map networks (pipeline.models.selecsls), the kinematic skeleton fit, the 1 Euro
filter and the box tracker."""
