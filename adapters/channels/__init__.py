"""Channel adapters behind one port (`ports.ChannelAdapter`): email, Twilio, FCM, fakes."""
