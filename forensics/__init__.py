"""Content forensics: robust fingerprints of images, audio and video; the work library (to come)."""
