"""Sources and parameters: the parameter store, the OSC address table and server, the camera and its alpha estimate."""
