"""Code that several Tandem serve services share: settings, database, task names, engines, costs."""
