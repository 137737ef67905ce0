"""Image fingerprints: decoding, 256-bit DCT hash, ORB features with RANSAC, binary indexes."""
