"""spotkit's Pulumi program: validated stack config, one ComponentResource per concern."""
