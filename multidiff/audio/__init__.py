"""Audio building blocks for TTS: HiFi-GAN-convention mels, vocoders, the English text frontend and
monotonic alignment search (Grad-TTS, Popov et al. 2021)."""
