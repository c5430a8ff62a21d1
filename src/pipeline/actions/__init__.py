"""Action recognition from synthetic video: clips of named motions rendered from synchronised
cameras, long-term temporal convolutions on RGB and optical flow (Varol, Laptev & Schmid,
"Long-term Temporal Convolutions for Action Recognition", TPAMI 2018), and view invariance
through a similarity loss between synchronised views (G. Varol, "Learning Visual
Representations for Human Body Analysis", PhD thesis, 2019, chapter 6)."""
