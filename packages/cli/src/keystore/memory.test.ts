import { createMemoryKeystore } from "./memory.js";
import { keystoreContract } from "./contract.js";

keystoreContract("memory", () => Promise.resolve(createMemoryKeystore()));
