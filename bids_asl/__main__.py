from bids_asl.cli.run import main

raise SystemExit(main())
